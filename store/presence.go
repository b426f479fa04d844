package store

import (
	"context"
	"time"
)

// Presence is implemented by stores that several instances share, so that
// each instance can tell how many SSE clients the whole cluster serves.
// Check for it with a type assertion: single-instance stores do not have it.
type Presence interface {
	// ReportClients records that instance serves n clients now. The record
	// expires after PresenceTTL unless it is reported again.
	ReportClients(ctx context.Context, instance string, n int) error
	// ClusterClients sums the unexpired counts of all instances.
	ClusterClients(ctx context.Context) (int, error)
}

// Presence timing: an instance reports every PresenceInterval; a count not
// refreshed within PresenceTTL (an instance that died) no longer counts.
const (
	PresenceInterval = 5 * time.Second
	PresenceTTL      = 15 * time.Second
)
