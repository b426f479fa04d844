package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"factstream/buildinfo"
	"factstream/client"
)

func post(ctx context.Context, args []string, e env) int {
	cmd := newCommand("post", "[--url U] [--token T] [--source S] INFO",
		"Publishes the fact INFO and prints it, as stored, as JSON. It retries transport\n"+
			"errors, 503 and 429 with one Idempotency-Key, so the fact is stored once. On a\n"+
			"rejection it prints the problem's detail and bad fields and exits with 1.")
	conn := cmd.connectionFlags()
	source := cmd.fs.String("source", "", "the fact's source: an absolute http(s) URL")
	operands, err := cmd.parse(args, e)
	if err != nil {
		return exitCode(err)
	}
	if len(operands) != 1 {
		return cmd.usageError(e, "want one INFO argument (quote it), got %d", len(operands))
	}
	c, err := conn.client("post", e)
	if err != nil {
		report("post", err, e)
		return 1
	}
	f, err := c.Publish(ctx, client.Draft{Info: operands[0], Source: *source})
	if err != nil {
		report("post", err, e)
		return 1
	}
	if err := json.NewEncoder(e.stdout).Encode(f); err != nil {
		report("post", err, e)
		return 1
	}
	return 0
}

func tail(ctx context.Context, args []string, e env) int {
	cmd := newCommand("tail", "[--url U] [--token T] [--after N]",
		"Prints every fact with a seq above N as one JSON line, in seq order, then each\n"+
			"new fact as it is published, until interrupted. It reconnects by itself across\n"+
			"disconnects and server restarts, showing each fact once, and notes on standard\n"+
			"error facts removed by retention or deleted, and a replaced store.")
	conn := cmd.connectionFlags()
	after := cmd.fs.Uint64("after", 0, "show the facts with a seq above this one (0: every fact)")
	operands, err := cmd.parse(args, e)
	if err != nil {
		return exitCode(err)
	}
	if len(operands) > 0 {
		return cmd.usageError(e, "unexpected argument %q", operands[0])
	}
	c, err := conn.client("tail", e)
	if err != nil {
		report("tail", err, e)
		return 1
	}
	out := json.NewEncoder(e.stdout)
	for ev, err := range c.Subscribe(ctx, *after) {
		if err != nil {
			report("tail", err, e)
			return 1
		}
		switch {
		case ev.Fact != nil:
			if err := out.Encode(ev.Fact); err != nil {
				report("tail", err, e)
				return 1
			}
		case ev.Truncated != nil:
			fmt.Fprintf(e.stderr, "factstream tail: the facts after seq %d and before seq %d were removed by retention; going on from %d\n",
				ev.Truncated.LastEventID, ev.Truncated.FirstSeq, ev.Truncated.FirstSeq)
		case ev.Deleted != nil:
			fmt.Fprintf(e.stderr, "factstream tail: fact %s (seq %d) was deleted\n", ev.Deleted.ID, ev.Deleted.Seq)
		case ev.Reset != nil:
			fmt.Fprintf(e.stderr, "factstream tail: the store was replaced (this tail was at seq %d); showing the new store's facts\n",
				ev.Reset.LastSeq)
		}
	}
	return 0 // interrupted
}

func version(args []string, e env) int {
	cmd := newCommand("version", "",
		"Prints the version (as /status shows it), the VCS revision, the commit and build\n"+
			"times and the Go version of this binary.")
	operands, err := cmd.parse(args, e)
	if err != nil {
		return exitCode(err)
	}
	if len(operands) > 0 {
		return cmd.usageError(e, "unexpected argument %q", operands[0])
	}
	fmt.Fprint(e.stdout, buildinfo.Read().Details())
	return 0
}
