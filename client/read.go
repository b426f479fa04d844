package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// Get returns the fact with this id; an unknown id is an *Error with
// Status 404.
func (c *Client) Get(ctx context.Context, id string) (Fact, error) {
	var f Fact
	err := c.call(ctx, request{method: http.MethodGet, path: "/facts/" + url.PathEscape(id)}, &f)
	return f, err
}

// List returns one page of stored facts.
func (c *Client) List(ctx context.Context, o ListOptions) (Page, error) {
	q := url.Values{}
	if o.Desc {
		q.Set("order", "desc")
		if o.Before > 0 {
			q.Set("before", strconv.FormatUint(o.Before, 10))
		}
	} else if o.After > 0 {
		q.Set("after", strconv.FormatUint(o.After, 10))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var body struct {
		Facts      []Fact  `json:"facts"`
		NextAfter  *uint64 `json:"next_after"`
		NextBefore *uint64 `json:"next_before"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/facts", query: q}, &body); err != nil {
		return Page{}, err
	}
	p := Page{Facts: body.Facts}
	if body.NextAfter != nil {
		p.NextAfter = *body.NextAfter
	}
	if body.NextBefore != nil {
		p.NextBefore = *body.NextBefore
	}
	return p, nil
}
