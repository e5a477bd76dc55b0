package routes

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGetOnly(t *testing.T) {
	h := getOnly(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	tests := []struct {
		method string
		status int
		allow  string
	}{
		{http.MethodGet, 200, ""},
		{http.MethodHead, 200, ""},
		{http.MethodPost, 405, "GET, HEAD"},
		{http.MethodDelete, 405, "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h(rec, httptest.NewRequest(tt.method, "/healthz", nil))
			if rec.Code != tt.status || rec.Header().Get("Allow") != tt.allow {
				t.Fatalf("%s = %d, Allow %q; want %d, %q", tt.method, rec.Code, rec.Header().Get("Allow"), tt.status, tt.allow)
			}
		})
	}
}
