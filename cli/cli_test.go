package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"factstream/buildinfo"
)

func testEnv(vars map[string]string) (env, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return env{getenv: func(k string) string { return vars[k] }, stdout: &out, stderr: &errOut}, &out, &errOut
}

func TestParseTakesFlagsAndOperandsInAnyOrder(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		vars     map[string]string
		operands []string
		url      string
		token    string
		source   string
	}{
		{"Defaults", []string{"x"}, nil, []string{"x"}, DefaultURL, "", ""},
		{"FlagsFirst", []string{"--url", "http://a:1", "-source=https://s", "x"}, nil, []string{"x"}, "http://a:1", "", "https://s"},
		{"FlagsAfter", []string{"x", "--source", "https://s", "--token=t"}, nil, []string{"x"}, DefaultURL, "t", "https://s"},
		{"DoubleDashEndsFlags", []string{"--", "--source"}, nil, []string{"--source"}, DefaultURL, "", ""},
		{"OperandThenDoubleDash", []string{"a", "--", "-b"}, nil, []string{"a", "-b"}, DefaultURL, "", ""},
		{"Environment", []string{"x"}, map[string]string{"FACTSTREAM_URL": "http://env:2", "FACTSTREAM_TOKEN": "envtok"},
			[]string{"x"}, "http://env:2", "envtok", ""},
		{"FlagBeatsEnvironment", []string{"--url=http://flag:3", "x"}, map[string]string{"FACTSTREAM_URL": "http://env:2"},
			[]string{"x"}, "http://flag:3", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newCommand("post", "", "")
			conn := cmd.connectionFlags()
			source := cmd.fs.String("source", "", "")
			e, _, _ := testEnv(tt.vars)
			operands, err := cmd.parse(tt.args, e)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(operands, "|") != strings.Join(tt.operands, "|") || conn.url != tt.url || conn.token != tt.token || *source != tt.source {
				t.Fatalf("operands %q url %q token %q source %q; want %q %q %q %q",
					operands, conn.url, conn.token, *source, tt.operands, tt.url, tt.token, tt.source)
			}
		})
	}
}

func TestCommandLineErrors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"PostWithoutInfo", []string{"post"}, 2, "want one INFO argument"},
		{"PostWithTwoInfos", []string{"post", "a", "b"}, 2, "got 2"},
		{"UnknownFlag", []string{"tail", "--follow"}, 2, "flag provided but not defined: -follow"},
		{"BadAfter", []string{"tail", "--after", "-1"}, 2, "invalid value"},
		{"TailOperand", []string{"tail", "x"}, 2, `unexpected argument "x"`},
		{"VersionOperand", []string{"version", "x"}, 2, `unexpected argument "x"`},
		{"BadURL", []string{"post", "--url", "localhost:3000", "x"}, 1, "want http:// or https://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code, ok := Run(context.Background(), tt.args, func(string) string { return "" }, &out, &errOut)
			if !ok || code != tt.code || !strings.Contains(errOut.String(), tt.stderr) || out.Len() != 0 {
				t.Fatalf("Run(%q) = %d, %v, stdout %q, stderr %q; want %d and %q on stderr",
					tt.args, code, ok, out.String(), errOut.String(), tt.code, tt.stderr)
			}
		})
	}
}

func TestEveryCommandHasItsHelp(t *testing.T) {
	for cmd, want := range map[string][]string{
		"post":    {"Usage: factstream post [--url U] [--token T] [--source S] INFO", "--url (FACTSTREAM_URL, default \"http://localhost:3000\")", "--token (FACTSTREAM_TOKEN)", "--source"},
		"tail":    {"Usage: factstream tail [--url U] [--token T] [--after N]", "--after", "--url"},
		"version": {"Usage: factstream version", "VCS revision"},
	} {
		t.Run(cmd, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code, ok := Run(context.Background(), []string{cmd, "-h"}, func(string) string { return "secret-from-env" }, &out, &errOut)
			if !ok || code != 0 || errOut.Len() != 0 {
				t.Fatalf("%s -h = %d, %v, stderr %q", cmd, code, ok, errOut.String())
			}
			for _, w := range want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("%s -h lacks %q:\n%s", cmd, w, out.String())
				}
			}
			if strings.Contains(out.String(), "secret-from-env") {
				t.Errorf("%s -h shows a value from the environment:\n%s", cmd, out.String())
			}
		})
	}
}

func TestUsageListsTheCommands(t *testing.T) {
	var out bytes.Buffer
	Usage(&out)
	for _, name := range []string{"serve", "post", "tail", "import", "healthcheck", "version"} {
		if !strings.Contains(out.String(), "\n  "+name+" ") {
			t.Errorf("usage lacks the command %s:\n%s", name, out.String())
		}
	}
	if !strings.Contains(out.String(), "--version") {
		t.Errorf("usage does not mention --version:\n%s", out.String())
	}
}

func TestVersionPrintsTheBuild(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-version"} {
		var out bytes.Buffer
		code, ok := Run(context.Background(), []string{arg}, func(string) string { return "" }, &out, &bytes.Buffer{})
		info := buildinfo.Read()
		if !ok || code != 0 || !strings.HasPrefix(out.String(), "factstream "+info.String()+"\n") || !strings.Contains(out.String(), info.GoVersion) {
			t.Fatalf("%s = %d, %v:\n%s", arg, code, ok, out.String())
		}
	}
}

func TestOtherArgumentsAreNotCommandsHere(t *testing.T) {
	for _, args := range [][]string{nil, {"serve"}, {"--addr=:3000"}, {"healthcheck"}, {"-h"}} {
		if _, ok := Run(context.Background(), args, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{}); ok {
			t.Errorf("Run(%q) took it as its own", args)
		}
	}
}

func TestExitCode(t *testing.T) {
	if exitCode(flag.ErrHelp) != 0 || exitCode(errors.New("bad flag")) != 2 {
		t.Fatal("-h must exit 0, a bad command line 2")
	}
}
