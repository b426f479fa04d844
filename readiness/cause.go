package readiness

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// redisError is how go-redis marks an error reply from the server, so the
// cause can be read without depending on the client.
type redisError interface {
	error
	RedisError()
}

// Cause names why a write failed, in the words an operator acts on: "disk
// full", "permission denied", "Redis out of memory", "Redis unreachable";
// anything else is "<kind> store error".
func Cause(kind string, err error) string {
	var reply redisError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EFBIG):
		return "disk full"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EROFS):
		return "permission denied"
	case errors.As(err, &reply) && strings.HasPrefix(reply.Error(), "OOM"):
		return "Redis out of memory"
	case errors.As(err, &netErr), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, context.DeadlineExceeded):
		if kind == "redis" {
			return "Redis unreachable"
		}
		return kind + " store unreachable"
	default:
		return kind + " store error"
	}
}
