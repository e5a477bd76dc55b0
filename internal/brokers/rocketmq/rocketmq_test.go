package rocketmq

import (
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{
		"orders": true, "%RETRY%g": true, "a|b_c-1": true,
		"": false, "a b": false, "a.b": false, strings.Repeat("x", MaxTopicLen+1): false,
	} {
		if err := CheckName(name, MaxTopicLen); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

func TestInstanceNameUnique(t *testing.T) {
	a, b := InstanceName("ferry"), InstanceName("ferry")
	if a == b || !strings.HasPrefix(a, "ferry-") {
		t.Errorf("InstanceName: %q, %q; want distinct names starting ferry-", a, b)
	}
}
