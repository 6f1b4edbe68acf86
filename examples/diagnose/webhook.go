package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// hook is the automated response: each critical incident is POSTed as JSON
// to url; warnings are logged.
type hook struct {
	url     string
	timeout time.Duration // per attempt
	retries int           // after the first attempt
	backoff time.Duration // first retry delay, doubling; 500ms when zero
	log     io.Writer
	client  *http.Client
}

// maxBackoff caps one wait between attempts (Retry-After included).
const maxBackoff = 30 * time.Second

// hookPayload is what one POST carries.
type hookPayload struct {
	Source   string    `json:"source"`
	Incident *Incident `json:"incident"`
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return errors.New("want an http:// or https:// URL")
	}
	return nil
}

// deliver posts every critical incident and logs every warning. It returns
// an error naming each critical incident that could not be delivered.
func (h *hook) deliver(ctx context.Context, rep *Report) error {
	logger := slog.New(slog.NewTextHandler(h.log, nil))
	if h.client == nil {
		h.client = &http.Client{}
	}
	var failed []error
	for _, inc := range rep.Incidents {
		switch inc.Severity {
		case Warning:
			logger.Warn("incident", "id", inc.ID, "kind", inc.Kind, "subject", inc.Subject, "title", inc.Title,
				"confidence", inc.Confidence.String(), "action", "logged, not posted (warning)")
		case Critical:
			n, err := h.post(ctx, rep.Source, inc)
			if err != nil {
				logger.Error("webhook", "id", inc.ID, "url", h.url, "attempts", n, "err", err)
				failed = append(failed, fmt.Errorf("%s not delivered after %d %s: %w", inc.ID, n, plural(n, "attempt", "attempts"), err))
				continue
			}
			logger.Info("webhook", "id", inc.ID, "url", h.url, "attempts", n, "action", "posted (critical)")
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("-webhook %s: %w", h.url, errors.Join(failed...))
	}
	return nil
}

// idempotencyKey names an incident the same way on every run, so a receiver
// can drop the duplicates retries and reruns send.
func idempotencyKey(inc *Incident) string {
	sum := sha256.Sum256([]byte(inc.Kind + "\x00" + inc.Subject + "\x00" + inc.First.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(sum[:16])
}

// retryable is an attempt's failure that a later attempt may not repeat.
type retryable struct {
	err   error
	after time.Duration // the server's Retry-After, if any
}

// Error implements error.
func (r *retryable) Error() string { return r.err.Error() }

// Unwrap returns the failure.
func (r *retryable) Unwrap() error { return r.err }

// post sends one incident with bounded retries and exponential backoff,
// and returns the attempts made.
func (h *hook) post(ctx context.Context, source string, inc *Incident) (int, error) {
	body, err := json.Marshal(hookPayload{Source: source, Incident: inc})
	if err != nil {
		return 0, err
	}
	wait := h.backoff
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	for attempt := 1; ; attempt++ {
		err := h.once(ctx, body, inc)
		if err == nil {
			return attempt, nil
		}
		var r *retryable
		if !errors.As(err, &r) || attempt > h.retries {
			return attempt, err
		}
		d := min(max(wait, r.after), maxBackoff)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, fmt.Errorf("%w (after: %v)", ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, maxBackoff)
	}
}

func (h *hook) once(ctx context.Context, body []byte, inc *Incident) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "addrguard-diagnose")
	req.Header.Set("Idempotency-Key", idempotencyKey(inc))
	resp, err := h.client.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return &retryable{err: fmt.Errorf("no answer within %v", h.timeout)}
		}
		return &retryable{err: err}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		r := &retryable{err: fmt.Errorf("server answered %s", resp.Status)}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			r.after = time.Duration(s) * time.Second
		}
		return r
	}
	return fmt.Errorf("server answered %s (not retried)", resp.Status)
}
