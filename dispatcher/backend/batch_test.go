package backend_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/dispatcher/backend"
)

func TestHTTPBatchIsStructuredCloudEventsArray(t *testing.T) {
	type seen struct {
		contentType, hops string
		events            []map[string]any
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var evs []map[string]any
		if err := json.Unmarshal(body, &evs); err != nil {
			t.Errorf("batch body is not a JSON array: %v: %s", err, body)
		}
		got <- seen{r.Header.Get("Content-Type"), r.Header.Get("Ferry-Hops"), evs}
		_, _ = w.Write([]byte(`{"batchItemFailures":[]}`))
	}))
	defer srv.Close()
	b, err := backend.NewHTTP(backend.HTTPConfig{URL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)
	inv := &dispatcher.Invocation{ID: "batch:k/0/1+2", Hops: 2, Attempt: 1, Batch: []dispatcher.Event{
		{ID: "k/0/1", Source: "kafka://b/t", Type: "dev.ferry.kafka.message", Time: when, Payload: []byte(`{"n":1}`),
			ContentType: "application/json", Key: "user-7", Headers: map[string]string{"Order-Type": "paid"}, Hops: 2},
		{ID: "k/0/2", Source: "kafka://b/t", Type: "dev.ferry.kafka.message", Time: when, Payload: []byte{0xff, 0x00}},
	}}
	if _, err := b.Invoke(context.Background(), inv); err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.contentType != backend.BatchContentType || s.hops != "3" || len(s.events) != 2 {
		t.Fatalf("content type %q, hops %q, %d events; want %s, 3, 2", s.contentType, s.hops, len(s.events), backend.BatchContentType)
	}
	first, second := s.events[0], s.events[1]
	if first["id"] != "k/0/1" || first["specversion"] != "1.0" || first["partitionkey"] != "user-7" ||
		first["ordertype"] != "paid" || first["ferryhops"] != float64(3) {
		t.Errorf("first event = %v", first)
	}
	if data, _ := first["data"].(map[string]any); data["n"] != float64(1) {
		t.Errorf("JSON payload not embedded as data: %v", first["data"])
	}
	if second["data_base64"] != base64.StdEncoding.EncodeToString([]byte{0xff, 0x00}) {
		t.Errorf("binary payload not sent as data_base64: %v", second)
	}
}
