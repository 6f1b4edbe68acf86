package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hookServer answers the n-th POST with codes[n] (the last code after
// that) and records what it received.
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   []hookPayload
	keys     []string
	attempts atomic.Int32
}

func newHookServer(t *testing.T, codes ...int) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(h.attempts.Add(1)) - 1
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		var p hookPayload
		body, _ := io.ReadAll(r.Body)
		if assert.NoError(t, json.Unmarshal(body, &p), string(body)) {
			h.mu.Lock()
			h.bodies = append(h.bodies, p)
			h.keys = append(h.keys, r.Header.Get("Idempotency-Key"))
			h.mu.Unlock()
		}
		w.WriteHeader(codes[min(n, len(codes)-1)])
	}))
	t.Cleanup(h.Close)
	return h
}

// TestWebhookRetries: two failures, then success: the critical incident is
// delivered on the third attempt with one idempotency key; warnings are
// logged, not posted.
func TestWebhookRetries(t *testing.T) {
	srv := newHookServer(t, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusOK)
	code, out, errs := runMain(t, "-webhook", srv.URL+"/hook")
	assert.Equal(t, exitIncidents, code, errs)
	assert.Contains(t, out, "INC-1 CRITICAL")
	assert.Equal(t, int32(3), srv.attempts.Load())
	require.Len(t, srv.bodies, 3)
	for _, p := range srv.bodies {
		assert.Equal(t, "INC-1", p.Incident.ID)
		assert.Equal(t, Critical, p.Incident.Severity)
		assert.Equal(t, "198.51.100.77", p.Incident.Subject)
		assert.NotEmpty(t, p.Incident.Evidence)
		assert.NotEmpty(t, p.Incident.Actions)
	}
	assert.Len(t, srv.keys[0], 32)
	assert.Equal(t, srv.keys[0], srv.keys[2], "retries carry the same idempotency key")
	// Three warnings logged, one critical posted.
	assert.Equal(t, 3, strings.Count(errs, "level=WARN msg=incident"), errs)
	for _, id := range []string{"INC-2", "INC-3", "INC-4"} {
		assert.Contains(t, errs, "id="+id)
	}
	assert.Contains(t, errs, `level=INFO msg=webhook id=INC-1`)
	assert.Contains(t, errs, "attempts=3")
}

// TestWebhookGivesUp: a server that always fails gets 1+retries attempts,
// and the run exits 2 naming the URL and the incident.
func TestWebhookGivesUp(t *testing.T) {
	srv := newHookServer(t, http.StatusInternalServerError)
	code, _, errs := runMain(t, "-webhook", srv.URL, "-webhook-retries", "2")
	assert.Equal(t, exitError, code)
	assert.Equal(t, int32(3), srv.attempts.Load())
	assert.Contains(t, errs, "-webhook "+srv.URL+": INC-1 not delivered after 3 attempts: server answered 500 Internal Server Error")
}

// TestWebhookNotRetried: a client error is final.
func TestWebhookNotRetried(t *testing.T) {
	srv := newHookServer(t, http.StatusBadRequest)
	code, _, errs := runMain(t, "-webhook", srv.URL)
	assert.Equal(t, exitError, code)
	assert.Equal(t, int32(1), srv.attempts.Load())
	assert.Contains(t, errs, "not delivered after 1 attempt: server answered 400 Bad Request (not retried)")
}

// TestWebhookTimeout: an attempt that gets no answer in -webhook-timeout is
// abandoned and retried; the run ends in bounded time.
func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	code, _, errs := runMain(t, "-webhook", srv.URL, "-webhook-timeout", "100ms", "-webhook-retries", "1")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errs, "not delivered after 2 attempts: no answer within 100ms")
	assert.Equal(t, int32(2), attempts.Load())
}

// TestWebhookRetryAfter: a 429's Retry-After is honoured (capped).
func TestWebhookRetryAfter(t *testing.T) {
	var times []time.Time
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		n := len(times)
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	code, _, errs := runMain(t, "-webhook", srv.URL)
	assert.Equal(t, exitIncidents, code, errs)
	require.Len(t, times, 2)
	assert.GreaterOrEqual(t, times[1].Sub(times[0]), time.Second, "waited as Retry-After asked")
}

// TestWebhookNothingCritical: only warnings: nothing is posted.
func TestWebhookNothingCritical(t *testing.T) {
	srv := newHookServer(t, http.StatusOK)
	s := copySamples(t)
	code, _, errs := runMain(t, "-webhook", srv.URL, "-store", s+"/east.db")
	assert.Equal(t, exitIncidents, code, errs)
	assert.Equal(t, int32(0), srv.attempts.Load())
	assert.Contains(t, errs, "level=WARN msg=incident id=INC-1 kind=pool-exhaustion")
}
