package web

// Cross-origin requests: none by default, so a page of another site in a
// nurse's browser cannot read patient data through the API. A site that
// serves its own front end on another origin lists that origin.

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// CheckOrigins refuses an origin that is not scheme://host[:port]; "*"
// is refused too: patient data is never for any site.
func CheckOrigins(origins []string) error {
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("cors-origins: %q is not an origin such as https://station.hospital.example (\"*\" is never allowed)", o)
		}
	}
	return nil
}

// CORS answers cross-origin requests from origins only; nil origins add
// no CORS header at all. It runs before authentication, so a preflight
// (which carries no token) is answered.
func CORS(origins []string) echo.MiddlewareFunc {
	if len(origins) == 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins:  origins,
		AllowMethods:  []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete},
		AllowHeaders:  []string{echo.HeaderAuthorization, echo.HeaderContentType, "Last-Event-ID"},
		ExposeHeaders: []string{echo.HeaderXRequestID, "Retry-After"},
		MaxAge:        600,
	})
}
