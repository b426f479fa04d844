package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/uuid"
)

// Publish stores one fact and returns it as stored.
//
// The call sends an Idempotency-Key of its own and retries with the same
// key after a transport error, a lost answer, 503, 429 or 409 (the first
// try still in flight), waiting as RetryPolicy and Retry-After say: the
// service stores the fact once, however many tries it takes. A rejected
// draft returns an *Error naming the bad fields.
func (c *Client) Publish(ctx context.Context, d Draft) (Fact, error) {
	var f Fact
	err := c.publish(ctx, "/fact", d, &f)
	return f, err
}

// PublishBatch stores 1 to 1000 facts at once, all or none, and returns
// them in order, with consecutive seqs. It retries as Publish does.
func (c *Client) PublishBatch(ctx context.Context, drafts []Draft) ([]Fact, error) {
	if drafts == nil {
		drafts = []Draft{} // the service names the empty batch
	}
	var facts []Fact
	err := c.publish(ctx, "/facts", drafts, &facts)
	return facts, err
}

func (c *Client) publish(ctx context.Context, path string, v, out any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	// One key for every try of this call, and the same body bytes: the
	// service answers a retry with the first try's outcome.
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Idempotency-Key", uuid.NewString())
	return c.call(ctx, request{method: http.MethodPost, path: path, body: body, header: h}, out)
}
