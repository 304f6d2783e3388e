// Command image builds the monitorme OCI image without a container
// runtime (none runs on the project's CI machines): the static binary as
// the one layer of an empty (scratch) base, with the Dockerfile's user,
// entrypoint and port, written as an OCI image layout. It then reads the
// layout back and checks what the chart relies on: a non-root user, the
// entrypoint, and a binary that runs and reports the version.
//
// It is a module of its own so that go-containerregistry is not a
// dependency of monitorme.
//
//	go run ./build/image -binary bin/monitorme-linux-amd64 -version 0.1.0 -out .cache/image
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	bin := flag.String("binary", "", "static monitorme binary (CGO_ENABLED=0)")
	version := flag.String("version", "devel", "image version (the chart's appVersion)")
	out := flag.String("out", ".cache/image", "directory of the OCI image layout")
	flag.Parse()
	if err := build(*bin, *version, *out); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func build(bin, version, out string) error {
	b, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		// /tmp for the read-only root filesystem's one writable mount point.
		for _, h := range []*tar.Header{
			{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: time.Unix(0, 0)},
			{Name: "monitorme", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(b)), ModTime: time.Unix(0, 0)},
		} {
			if err := tw.WriteHeader(h); err != nil {
				return nil, err
			}
			if h.Typeflag == tar.TypeReg {
				if _, err := tw.Write(b); err != nil {
					return nil, err
				}
			}
		}
		if err := tw.Close(); err != nil {
			return nil, err
		}
		return io.NopCloser(&buf), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = runtime.GOARCH, "linux"
	cfg.Config.User = "65532:65532"
	cfg.Config.Entrypoint = []string{"/monitorme"}
	cfg.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	cfg.Config.Labels = map[string]string{"org.opencontainers.image.version": version, "org.opencontainers.image.title": "monitorme"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img); err != nil {
		return err
	}
	return check(out, version)
}

// check reads the layout back as a registry client would and checks it.
func check(out, version string) error {
	p, err := layout.FromPath(out)
	if err != nil {
		return err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return err
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		return fmt.Errorf("index: %v manifests, %v", len(m.Manifests), err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	switch {
	case cfg.Config.User != "65532:65532":
		return fmt.Errorf("user %q, want non-root 65532:65532", cfg.Config.User)
	case len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/monitorme":
		return fmt.Errorf("entrypoint %v", cfg.Config.Entrypoint)
	}
	// The binary, taken from the image's layer, runs on this machine.
	dir, err := os.MkdirTemp("", "image-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := extract(img, dir); err != nil {
		return err
	}
	v, err := exec.Command(filepath.Join(dir, "monitorme"), "version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("the image's binary does not run: %v %s", err, v)
	}
	if !bytes.Contains(v, []byte(version)) {
		return fmt.Errorf("the image's binary reports %q, want version %s", bytes.TrimSpace(v), version)
	}
	d, _ := img.Digest()
	layers, _ := img.Layers()
	var total int64
	for _, l := range layers {
		s, _ := l.Size()
		total += s
	}
	fmt.Printf("image %s: %s, %d layer(s), %.1f MB compressed, user %s, entrypoint %v; its binary says: %s",
		out, d, len(layers), float64(total)/1e6, cfg.Config.User, cfg.Config.Entrypoint, v)
	return nil
}

func extract(img v1.Image, dir string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, filepath.Base(h.Name)), os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode))
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		f.Close()
	}
}
