package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The floor answers a publish the way factstream does, as far as the
// generator looks: 201, a Location, and a JSON body.
func TestFloorAnswersPublishes(t *testing.T) {
	srv := httptest.NewServer(floorHandler())
	defer srv.Close()
	for i := 1; i <= 2; i++ {
		resp, err := http.Post(srv.URL+"/fact", "application/json", strings.NewReader(`{"info":"x","source":"https://e.example"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") == "" || !strings.HasPrefix(string(body), `{"id":`) {
			t.Fatalf("publish %d: %d %q %q", i, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
}
