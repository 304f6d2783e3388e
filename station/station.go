// Package station is the nurse-station page: a central station's ward
// view (bed tiles, the alarm list, a patient's trends) that the API role
// serves itself at /station/, embedded in the binary. It is plain HTML,
// CSS and JavaScript with no build step and nothing fetched from another
// host, because hospital networks are closed; it reads the API the way
// any other client does (REST, the live stream with Last-Event-ID
// resume) and holds no data of its own.
package station

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/labstack/echo/v4"
)

//go:embed static
var files embed.FS

// Static is the page's files: index.html, station.css, station.js.
func Static() fs.FS {
	sub, _ := fs.Sub(files, "static")
	return sub
}

// Register serves the page at /station/ and sends / there.
func Register(e *echo.Echo) {
	e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/station/") })
	h := http.StripPrefix("/station/", http.FileServer(http.FS(Static())))
	e.GET("/station/*", func(c echo.Context) error {
		// The page may be cached briefly; a new build is a reload away.
		c.Response().Header().Set("Cache-Control", "no-cache")
		c.Response().Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		c.Response().Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(c.Response(), c.Request())
		return nil
	})
}
