// Package cli holds the commands of the factstream binary that talk to a
// running service, post and tail, built on the client package, and
// version, which describes the build.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"factstream/client"
)

// DefaultURL is the service a command talks to without --url or
// FACTSTREAM_URL.
const DefaultURL = "http://localhost:3000"

// env is what a command gets from the process.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// Run runs the command that args[0] names and returns its exit code: 0 on
// success, 1 when the command failed, 2 for a wrong command line. ok is
// false, and nothing happens, when args[0] names none of this package's
// commands.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	e := env{getenv: getenv, stdout: stdout, stderr: stderr}
	switch args[0] {
	case "post":
		return post(ctx, args[1:], e), true
	case "tail":
		return tail(ctx, args[1:], e), true
	case "version", "--version", "-version":
		return version(args[1:], e), true
	}
	return 0, false
}

// Usage writes the list of the binary's commands.
func Usage(w io.Writer) {
	fmt.Fprint(w, `factstream serves facts live over Server-Sent Events; its commands talk to such a service.

Usage: factstream [COMMAND] [flags]

Commands:
  serve        run the service (also what "factstream" alone does); its settings follow
  post         publish one fact and print it, as stored, as JSON
  tail         print every fact as one JSON line, live, until interrupted
  import       load exported facts into an empty, offline store
  healthcheck  exit 0 when the service on --addr answers GET /healthz
  version      print the version, VCS revision, build time and Go version (also --version)

"factstream COMMAND -h" describes a command and its flags.

`)
}

// command is one command's flag set and what -h prints about it.
type command struct {
	fs       *flag.FlagSet
	synopsis string
	about    string
	envs     map[string]string // flag name → environment variable
}

func newCommand(name, synopsis, about string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &command{fs: fs, synopsis: synopsis, about: about, envs: map[string]string{}}
}

// parse reads args, flags and operands in any order ("--" ends the
// flags), and applies the environment to the flags not given. It returns
// the operands, or flag.ErrHelp after printing the help to stdout, or an
// error after printing it and the synopsis to stderr.
func (c *command) parse(args []string, e env) ([]string, error) {
	var operands []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.help(e.stdout)
				return nil, err
			}
			fmt.Fprintf(e.stderr, "factstream %s: %v\nUsage: factstream %s %s\n", c.fs.Name(), err, c.fs.Name(), c.synopsis)
			return nil, err
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			operands = append(operands, rest...)
			break
		}
		operands, args = append(operands, rest[0]), rest[1:]
	}
	given := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, variable := range c.envs {
		if v := e.getenv(variable); v != "" && !given[name] {
			if err := c.fs.Set(name, v); err != nil {
				fmt.Fprintf(e.stderr, "factstream %s: %s: %v\n", c.fs.Name(), variable, err)
				return nil, err
			}
		}
	}
	return operands, nil
}

// usageError reports a wrong command line.
func (c *command) usageError(e env, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "factstream %s: %s\nUsage: factstream %s %s\n", c.fs.Name(), fmt.Sprintf(format, args...), c.fs.Name(), c.synopsis)
	return 2
}

func (c *command) help(w io.Writer) {
	fmt.Fprintf(w, "Usage: factstream %s %s\n\n%s\n", c.fs.Name(), c.synopsis, c.about)
	first := true
	c.fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintln(w)
			first = false
		}
		fmt.Fprintf(w, "  --%s", f.Name)
		var notes []string
		if v := c.envs[f.Name]; v != "" {
			notes = append(notes, v)
		}
		if f.DefValue != "" && f.DefValue != "0" {
			notes = append(notes, fmt.Sprintf("default %q", f.DefValue))
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(notes, ", "))
		}
		fmt.Fprintf(w, "\n      %s\n", f.Usage)
	})
}

// connection holds the flags every command that talks to a service has.
type connection struct {
	url, token string
}

func (c *command) connectionFlags() *connection {
	conn := &connection{}
	c.fs.StringVar(&conn.url, "url", DefaultURL, "base URL of the factstream service")
	c.fs.StringVar(&conn.token, "token", "", "bearer token: a publish token, or a subscribe token for tail")
	c.envs["url"], c.envs["token"] = "FACTSTREAM_URL", "FACTSTREAM_TOKEN"
	return conn
}

// client is a client of the service, noting each retry on standard error.
func (conn *connection) client(name string, e env) (*client.Client, error) {
	return client.New(conn.url, client.Options{
		Token: conn.token,
		OnRetry: func(err error, wait time.Duration) {
			fmt.Fprintf(e.stderr, "factstream %s: %v; trying again in %v\n", name, err, wait.Round(time.Millisecond))
		},
	})
}

// report writes a failure to standard error: the problem's detail and its
// fields when the service gave one.
func report(name string, err error, e env) {
	var p *client.Error
	if !errors.As(err, &p) {
		fmt.Fprintf(e.stderr, "factstream %s: %v\n", name, err)
		return
	}
	detail := p.Detail
	if detail == "" {
		detail = p.Title
	}
	fmt.Fprintf(e.stderr, "factstream %s: %s (%d %s)\n", name, detail, p.Status, p.Code())
	for _, f := range p.Errors {
		if f.Detail != detail || len(p.Errors) > 1 {
			fmt.Fprintf(e.stderr, "  %s: %s\n", f.Field, f.Detail)
		}
	}
}

// exitCode is the exit code after parse failed: 0 for -h, 2 otherwise.
func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
