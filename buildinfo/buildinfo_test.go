package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuild(t *testing.T) {
	vcs := func(rev, time, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "factstream", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
				{Key: "vcs.time", Value: time}, {Key: "vcs.modified", Value: modified}}}
	}
	const rev = "1bdddbe94ee47f1096ccdaf38f50c4c1263cb605"
	tests := []struct {
		name    string
		bi      *debug.BuildInfo
		linked  Info
		version string
		details []string
	}{
		{"GoRunKnowsNothing", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}}, Info{},
			"devel", []string{"factstream devel\n", "revision:  unknown", "built:     unknown", "go:        go1.26.0 "}},
		{"NoBuildInfo", nil, Info{}, "devel", []string{"factstream devel\n"}},
		{"CheckoutWithoutModuleVersion", vcs(rev, "2026-11-22T00:10:12Z", "false"), Info{},
			"devel+1bdddbe94ee4", []string{"revision:  " + rev + "\n", "committed: 2026-11-22T00:10:12Z"}},
		{"ModifiedCheckout", vcs(rev, "2026-11-22T00:10:12Z", "true"), Info{},
			"devel+1bdddbe94ee4.dirty", []string{"(with uncommitted changes)"}},
		{"ModuleVersionStampedByGoBuild", func() *debug.BuildInfo {
			bi := vcs(rev, "2026-11-22T00:10:12Z", "false")
			bi.Main.Version = "v0.0.0-20261122001012-1bdddbe94ee4"
			return bi
		}(), Info{}, "v0.0.0-20261122001012-1bdddbe94ee4", nil},
		{"LinkerWinsInAnImageWithoutVCS", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			Info{Version: "v1.2.0", Revision: rev, BuildTime: "2026-11-23T08:00:00Z"},
			"v1.2.0", []string{"factstream v1.2.0\n", "revision:  " + rev + "\n", "built:     2026-11-23T08:00:00Z"}},
		{"LinkerRevisionOnly", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, Info{Revision: rev},
			"devel+1bdddbe94ee4", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := fromBuild(tt.bi, tt.linked)
			if got := info.String(); got != tt.version {
				t.Errorf("String() = %q, want %q", got, tt.version)
			}
			details := info.Details()
			for _, want := range tt.details {
				if !strings.Contains(details, want) {
					t.Errorf("Details() = %q, missing %q", details, want)
				}
			}
			if info.GoVersion == "" || info.Platform == "" {
				t.Errorf("Go version %q, platform %q: want both", info.GoVersion, info.Platform)
			}
		})
	}
}

// TestReadAgreesWithTheBinary checks the test binary's own information:
// whatever it is built with, the version is never "(devel)" alone.
func TestReadAgreesWithTheBinary(t *testing.T) {
	info := Read()
	if v := info.String(); v == "" || strings.Contains(v, "(devel)") {
		t.Fatalf("version %q", v)
	}
	bi, ok := debug.ReadBuildInfo()
	if ok && info.GoVersion != bi.GoVersion {
		t.Fatalf("Go version %q, the binary says %q", info.GoVersion, bi.GoVersion)
	}
}
