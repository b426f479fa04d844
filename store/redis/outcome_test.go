package redis

import (
	"context"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

func TestMaybeExecutedOnlyWhenTheCallMayHaveRun(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"ErrorReply", replyErr("OOM command not allowed"), false},
		{"NeverConnected", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, false},
		{"PoolTimeout", goredis.ErrPoolTimeout, false},
		{"ReadTimeout", &net.OpError{Op: "read", Err: context.DeadlineExceeded}, true},
		{"Deadline", context.DeadlineExceeded, true},
		{"ConnectionLost", io.EOF, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := fmt.Errorf("redis append: %w", tc.err)
			if got := maybeExecuted(err); got != tc.want {
				t.Fatalf("maybeExecuted(%v) = %v, want %v", err, got, tc.want)
			}
		})
	}
}
