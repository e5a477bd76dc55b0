package poller_test

import (
	"slices"
	"testing"

	"github.com/ferrydev/ferry/poller"
)

func TestFilterMatch(t *testing.T) {
	f := &poller.Filter{
		Headers: map[string][]string{"Type": {"order.created"}},
		JSON:    map[string][]string{"status": {"paid", "shipped"}, "qty": {"2"}, "gift": {"true"}},
	}
	tests := []struct {
		name    string
		headers map[string]string
		payload string
		want    bool
	}{
		{"AllMatch", map[string]string{"type": "order.created"}, `{"status":"paid","qty":2,"gift":true}`, true},
		{"OtherAllowedValue", map[string]string{"TYPE": "order.created"}, `{"status":"shipped","qty":2,"gift":true,"x":1}`, true},
		{"HeaderMissing", nil, `{"status":"paid","qty":2,"gift":true}`, false},
		{"HeaderDiffers", map[string]string{"type": "order.deleted"}, `{"status":"paid","qty":2,"gift":true}`, false},
		{"FieldDiffers", map[string]string{"type": "order.created"}, `{"status":"open","qty":2,"gift":true}`, false},
		{"NumberAsText", map[string]string{"type": "order.created"}, `{"status":"paid","qty":"2","gift":true}`, true},
		{"FieldMissing", map[string]string{"type": "order.created"}, `{"status":"paid","gift":true}`, false},
		{"NotJSON", map[string]string{"type": "order.created"}, `status=paid`, false},
		{"JSONArray", map[string]string{"type": "order.created"}, `[{"status":"paid"}]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &poller.Message{Headers: tt.headers, Payload: []byte(tt.payload)}
			if got := f.Match(m); got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
		})
	}
	var none *poller.Filter
	if !none.Match(&poller.Message{}) {
		t.Fatal("a nil filter must match everything")
	}
}

func TestParseBatchFailures(t *testing.T) {
	tests := []struct {
		body string
		want []string
	}{
		{`{"batchItemFailures":[{"itemIdentifier":"a"},{"itemIdentifier":"b"}]}`, []string{"a", "b"}},
		{` {"batchItemFailures":[]} `, nil},
		{`{"batchItemFailures":[{"itemIdentifier":""}]}`, nil},
		{`{"output":"ok"}`, nil},
		{`"just a string"`, nil},
		{``, nil},
		{`{"batchItemFailures":"nope"}`, nil},
	}
	for _, tt := range tests {
		if got := poller.ParseBatchFailures([]byte(tt.body)); !slices.Equal(got, tt.want) {
			t.Errorf("ParseBatchFailures(%q) = %v, want %v", tt.body, got, tt.want)
		}
	}
}

// FuzzParseBatchFailures: any function response body, however malformed,
// yields a list of ids or nil, never a panic.
func FuzzParseBatchFailures(f *testing.F) {
	f.Add([]byte(`{"batchItemFailures":[{"itemIdentifier":"kafka:t/0/1"}]}`))
	f.Add([]byte(`{"batchItemFailures":[{"itemIdentifier":1}]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, id := range poller.ParseBatchFailures(body) {
			if id == "" {
				t.Fatal("an empty item identifier was returned")
			}
		}
	})
}
