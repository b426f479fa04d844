// Command factstream serves facts live over Server-Sent Events.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"factstream/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
