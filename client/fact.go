package client

import "time"

// Fact is a stored fact, as the service returns it.
type Fact struct {
	// ID is the fact's UUIDv7.
	ID string `json:"id"`
	// Seq is the store's sequence number: it starts at 1 and grows in
	// commit order. It is the stream's event id.
	Seq uint64 `json:"seq"`
	// Info is the fact's text.
	Info string `json:"info"`
	// Source is an http(s) URL, or empty.
	Source string `json:"source"`
	// CreatedAt is when the fact was stored.
	CreatedAt time.Time `json:"created_at"`
}

// Draft is a fact to publish.
type Draft struct {
	// Info is required: 1 to 4096 characters once white space around it
	// is trimmed.
	Info string `json:"info"`
	// Source is optional; when not empty, an absolute http or https URL.
	Source string `json:"source,omitempty"`
}

// ListOptions select a page of facts.
type ListOptions struct {
	// After lists facts with a seq above it, oldest first (0: from the
	// start).
	After uint64
	// Before, with Desc, lists facts with a seq below it (0: from the
	// newest).
	Before uint64
	// Limit is the most facts on the page, 1 to 1000; 0 means the
	// server's default, 100.
	Limit int
	// Desc lists newest first.
	Desc bool
}

// Page is one page of facts. The next page starts after NextAfter
// (ascending) or before NextBefore (descending); an empty page is the end.
type Page struct {
	Facts []Fact
	// NextAfter is the seq of the page's last fact in ascending order;
	// 0 when the page is empty or descending.
	NextAfter uint64
	// NextBefore is the seq of the page's last fact in descending order;
	// 0 when the page is empty or ascending.
	NextBefore uint64
}
