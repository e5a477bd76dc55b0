package kafka

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheckTopic(t *testing.T) {
	tests := []struct {
		topic   string
		wantErr string // "" = valid
	}{
		{"orders", ""},
		{"echo-dlq.v1_2", ""},
		{strings.Repeat("a", 249), ""},
		{"", "empty"},
		{".", `"."`},
		{"..", `".."`},
		{strings.Repeat("a", 250), "longer than 249"},
		{"with space", "' '"},
		{"slash/name", "'/'"},
		{"ünïcode", "'ü'"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.20q", tt.topic), func(t *testing.T) {
			err := CheckTopic(tt.topic)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckTopic(%q) = %v, want nil", tt.topic, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("CheckTopic(%q) = %v, want an error containing %q", tt.topic, err, tt.wantErr)
			}
		})
	}
}

func TestCheckBrokers(t *testing.T) {
	got := fmt.Sprint(CheckBrokers([]string{"127.0.0.1:9092", "", "x", "h:p"}))
	want := `[brokers[1]: empty address brokers[2]: "x" is not host:port brokers[3]: "h:p" is not host:port]`
	if got != want {
		t.Errorf("CheckBrokers = %s, want %s", got, want)
	}
	if errs := CheckBrokers(nil); len(errs) != 1 || !strings.Contains(errs[0].Error(), "at least one broker") {
		t.Errorf("CheckBrokers(nil) = %v", errs)
	}
}
