package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// buildInfo is what the binary knows of its build: the version (set with
// -ldflags "-X main.version=…", else the module version go build
// recorded), the VCS revision and the Go version.
type buildInfo struct {
	Version, Revision, GoVersion string
	Modified                     bool
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if b.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// versionLine is what plexus -version prints.
func versionLine() string {
	b := readBuildInfo()
	rev := b.Revision
	if rev == "" {
		rev = "unknown revision"
	} else if b.Modified {
		rev += " (modified)"
	}
	return fmt.Sprintf("plexus %s (%s, %s)", b.Version, rev, b.GoVersion)
}

// registerBuildInfo exports plexus_build_info{version,revision,go_version} 1.
func registerBuildInfo(reg prometheus.Registerer) {
	b := readBuildInfo()
	promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
		Name: "plexus_build_info",
		Help: "Always 1; the labels describe the running binary.",
	}, []string{"version", "revision", "go_version"}).WithLabelValues(b.Version, b.Revision, b.GoVersion).Set(1)
}
