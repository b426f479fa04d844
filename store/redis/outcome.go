package redis

import (
	"errors"
	"net"

	goredis "github.com/redis/go-redis/v9"
)

// maybeExecuted tells whether a failed call may have run all the same: an
// error reply (OOM, BUSY, a script error) and a connection that was never
// made say it did not; a timeout or a connection lost after the call was
// written say nothing, since Redis may run it once it gets to it.
func maybeExecuted(err error) bool {
	var reply goredis.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &reply):
		return false
	case errors.Is(err, goredis.ErrPoolTimeout), errors.Is(err, goredis.ErrClosed):
		return false
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return false
	}
	return true
}
