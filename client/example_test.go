package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"factstream/client"
)

// Publish a fact, then follow the stream: every fact so far, then each
// one as it is published. The README shows this example from
// "ctx := context.Background()" on.
func Example() {
	url, stop := exampleService() // a factstream on a free port, in this process
	defer stop()

	ctx := context.Background()
	c, err := client.New(url, client.Options{}) // Options{Token: ...} when publishing is protected
	if err != nil {
		log.Fatal(err)
	}
	fact, err := c.Publish(ctx, client.Draft{
		Info:   "Shark teeth are embedded in the gums.",
		Source: "https://en.wikipedia.org/wiki/Shark",
	})
	if err != nil {
		log.Fatal(err) // an *client.Error carries the problem: status, detail, bad fields
	}
	fmt.Println("published", fact.Seq)

	// Every fact after seq 0, once and in order, across reconnects and
	// server restarts; the loop runs until ctx ends or it breaks.
	for ev, err := range c.Subscribe(ctx, 0) {
		if err != nil {
			log.Fatal(err) // only what reconnecting cannot cure, such as a wrong token
		}
		if ev.Fact == nil {
			continue // ev.Truncated, ev.Deleted or ev.Reset: see client.Event
		}
		fmt.Println(ev.Fact.Seq, ev.Fact.Info)
		if ev.Fact.Seq == 2 {
			break
		}
		if _, err := c.Publish(ctx, client.Draft{Info: "Octopuses have three hearts."}); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// published 1
	// 1 Shark teeth are embedded in the gums.
	// 2 Octopuses have three hearts.
}

func ExampleClient_Publish() {
	url, stop := exampleService()
	defer stop()

	c, err := client.New(url, client.Options{
		// Retries of one call reuse its Idempotency-Key: the fact is
		// stored once however many tries it takes.
		Retry: client.RetryPolicy{Attempts: 5},
	})
	if err != nil {
		log.Fatal(err)
	}
	fact, err := c.Publish(context.Background(), client.Draft{Info: "Honey never spoils."})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(fact.Seq, fact.Info, len(fact.ID))
	// Output: 1 Honey never spoils. 36
}

func ExampleClient_PublishBatch() {
	url, stop := exampleService()
	defer stop()

	c, err := client.New(url, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	facts, err := c.PublishBatch(context.Background(), []client.Draft{
		{Info: "Bananas are berries."},
		{Info: "Strawberries are not."},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range facts {
		fmt.Println(f.Seq, f.Info)
	}
	// Output:
	// 1 Bananas are berries.
	// 2 Strawberries are not.
}

func ExampleClient_List() {
	url, stop := exampleService()
	defer stop()
	ctx := context.Background()

	c, err := client.New(url, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.PublishBatch(ctx, []client.Draft{{Info: "one"}, {Info: "two"}, {Info: "three"}}); err != nil {
		log.Fatal(err)
	}
	// Page through every fact, two at a time: an empty page is the end.
	for after := uint64(0); ; {
		page, err := c.List(ctx, client.ListOptions{After: after, Limit: 2})
		if err != nil {
			log.Fatal(err)
		}
		if len(page.Facts) == 0 {
			break
		}
		for _, f := range page.Facts {
			fmt.Println(f.Seq, f.Info)
		}
		after = page.NextAfter
	}
	// Output:
	// 1 one
	// 2 two
	// 3 three
}

func ExampleClient_Get() {
	url, stop := exampleService()
	defer stop()
	ctx := context.Background()

	c, err := client.New(url, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	stored, err := c.Publish(ctx, client.Draft{Info: "Venus spins backwards."})
	if err != nil {
		log.Fatal(err)
	}
	f, err := c.Get(ctx, stored.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f.Seq, f.Info)
	// Output: 1 Venus spins backwards.
}

// A rejected request is an *Error: the service's problem document.
func ExampleError() {
	url, stop := exampleService()
	defer stop()

	c, err := client.New(url, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Publish(context.Background(), client.Draft{Info: "  ", Source: "ftp://example.com"})
	var problem *client.Error
	if errors.As(err, &problem) {
		fmt.Println(problem.Status, problem.Code())
		for _, f := range problem.Errors {
			fmt.Println(f.Field)
		}
	}
	// Output:
	// 400 invalid-fact
	// info
	// source
}
