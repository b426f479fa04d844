// Package buildinfo says which build of factstream is running: the one
// version string that /status, the start-up log and "factstream version"
// show, and the details behind it (VCS revision, time, Go version).
//
// "go build" and "go install" stamp the module version and the VCS state
// into every binary by themselves; builds without a checkout (a container
// image built from a copy of the sources) pass the same facts to the
// linker instead:
//
//	go build -ldflags "-X factstream/buildinfo.version=v1.2.0 \
//	    -X factstream/buildinfo.revision=$(git rev-parse HEAD) \
//	    -X factstream/buildinfo.buildTime=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set only by the linker (-X), which can set nothing but package-level
// strings; nothing assigns them at run time.
var (
	version   string
	revision  string
	buildTime string
)

// devel is the version of a build that knows no release or module version.
const devel = "devel"

// Info describes one build.
type Info struct {
	// Version is the release or module version the build was given, or
	// "devel" when it has none (go run, a plain build outside a VCS).
	Version string
	// Revision is the VCS commit the build was made from; empty when
	// unknown.
	Revision string
	// CommitTime is the time of that commit (RFC 3339); empty when unknown.
	CommitTime string
	// BuildTime is the time the build was made, when the linker was told
	// (RFC 3339); Go does not record it by itself, to keep builds
	// reproducible.
	BuildTime string
	// Modified reports uncommitted changes in the working tree the build
	// was made from.
	Modified bool
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
	// Platform is the target operating system and architecture.
	Platform string
}

// Read returns the running binary's build information.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuild(bi, Info{Version: version, Revision: revision, BuildTime: buildTime})
}

// fromBuild merges what the linker was told (linked) over what the Go
// toolchain recorded (bi, nil when the binary carries none).
func fromBuild(bi *debug.BuildInfo, linked Info) Info {
	info := Info{GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			info.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.CommitTime = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if linked.Version != "" {
		info.Version = linked.Version
	}
	if linked.Revision != "" {
		info.Revision = linked.Revision
	}
	if linked.BuildTime != "" {
		info.BuildTime = linked.BuildTime
	}
	if info.Version == "" {
		info.Version = devel
	}
	return info
}

// String is the version in one word, as /status shows it: the release or
// module version, or "devel" followed by the short revision (and ".dirty"
// for a modified tree) when that is all that is known.
func (i Info) String() string {
	if i.Version != devel {
		return i.Version
	}
	v := devel
	if i.Revision != "" {
		v += "+" + shortRevision(i.Revision)
		if i.Modified {
			v += ".dirty"
		}
	}
	return v
}

// Details is the multi-line account "factstream version" prints: the
// version, then revision, times and Go version, saying what is unknown.
func (i Info) Details() string {
	var b strings.Builder
	fmt.Fprintf(&b, "factstream %s\n", i)
	switch {
	case i.Revision == "":
		b.WriteString("revision:  unknown (no VCS information in this build: go run, -buildvcs=false or no .git)\n")
	case i.Modified:
		fmt.Fprintf(&b, "revision:  %s (with uncommitted changes)\n", i.Revision)
	default:
		fmt.Fprintf(&b, "revision:  %s\n", i.Revision)
	}
	if i.CommitTime != "" {
		fmt.Fprintf(&b, "committed: %s\n", i.CommitTime)
	}
	if i.BuildTime != "" {
		fmt.Fprintf(&b, "built:     %s\n", i.BuildTime)
	} else {
		b.WriteString("built:     unknown (only builds given buildinfo.buildTime record it)\n")
	}
	fmt.Fprintf(&b, "go:        %s %s\n", i.GoVersion, i.Platform)
	return b.String()
}

func shortRevision(r string) string {
	if len(r) > 12 {
		return r[:12]
	}
	return r
}
