// Package apispec checks HTTP exchanges with Ferry's API against its
// OpenAPI description, docs/openapi.yaml, so that the document cannot drift
// from what the server does: the end-to-end suite (test/e2e) sends its API
// requests through a Transport, which checks every real request and
// response, and the package's own test proves that the document is valid
// OpenAPI 3.1 and that a response it does not describe is caught.
//
// It is test code: only tests import it, so the validator it uses
// (pb33f/libopenapi-validator) never reaches the ferry binary.
package apispec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	valerrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"
	"github.com/pb33f/libopenapi-validator/paths"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// Spec is a loaded OpenAPI document that checks exchanges against it. It
// is safe for concurrent use.
type Spec struct {
	errorSchema *base.Schema // components.schemas.Error

	mu      sync.Mutex // the validators are not documented as safe for concurrent use
	reqs    validator.Validator
	resps   validator.Validator // strict: fields and headers the document does not name are mismatches
	schemas schema_validation.SchemaValidator
	model   *v3.Document
	answers map[string]bool // "METHOD /path/{template} status": exercised

	checked, failed atomic.Int64
}

// Load reads and compiles the OpenAPI document at path.
func Load(path string) (*Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(raw)
}

// Parse compiles an OpenAPI document. Formats (date-time, uuid) are
// asserted, and the document needs a components.schemas.Error, the body of
// every error answer.
//
// Responses are checked strictly: a JSON field (outside a task's output)
// or a declared response's header that the document does not name is a
// mismatch, though its schemas allow more (the document tells clients to
// ignore fields they do not know; the check holds Ferry to documenting
// them). Requests are checked as the document says: a task's payload is
// the user's own JSON.
func Parse(raw []byte) (*Spec, error) {
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	var errorSchema *base.Schema
	if c := model.Model.Components; c != nil && c.Schemas != nil {
		if p, ok := c.Schemas.Get("Error"); ok {
			errorSchema = p.Schema()
		}
	}
	if errorSchema == nil {
		return nil, errors.New("openapi: components.schemas.Error is missing")
	}
	reqs, errs := validator.NewValidator(doc, config.WithFormatAssertions())
	if len(errs) > 0 {
		return nil, fmt.Errorf("openapi: %w", errors.Join(errs...))
	}
	resps, errs := validator.NewValidator(doc, config.WithFormatAssertions(),
		config.WithStrictMode(), config.WithStrictIgnorePaths(anyJSON...))
	if len(errs) > 0 {
		return nil, fmt.Errorf("openapi: %w", errors.Join(errs...))
	}
	answers := map[string]bool{}
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			for code := range op.Responses.Codes.KeysFromOldest() {
				answers[answerKey(method, path, code)] = false
			}
		}
	}
	return &Spec{
		errorSchema: errorSchema, reqs: reqs, resps: resps,
		schemas: schema_validation.NewSchemaValidator(config.WithFormatAssertions()),
		model:   &model.Model, answers: answers,
	}, nil
}

func answerKey(method, path, code string) string {
	return strings.ToUpper(method) + " " + path + " " + code
}

// Unexercised lists the answers the document describes ("METHOD /path
// status") that no exchange checked so far had.
func (s *Spec) Unexercised() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k, seen := range s.answers {
		if !seen {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// anyJSON are the places in response bodies that hold the user's own JSON
// (a task's output and payload, a trigger's lag per partition), exempt
// from the strict check of undeclared fields.
var anyJSON = []string{"$.body.output", "$.body.tasks[*].output", "$.body.payload", "$.body.triggers[*].lag_by_partition"}

// Problems returns what makes the document itself invalid against the
// OpenAPI schema of its version (3.1), or nil.
func (s *Spec) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok, errs := s.reqs.ValidateDocument()
	if ok {
		return nil
	}
	return messages(errs)
}

// Exchange is one request to the API and its response, with both bodies
// read.
type Exchange struct {
	Request      *http.Request // its Body is ignored: RequestBody is used
	RequestBody  []byte
	Response     *http.Response // its Body is ignored: ResponseBody is used
	ResponseBody []byte
	// Malformed says the request is bad on purpose (a test of bad input):
	// the request itself is not checked, only that the answer is one the
	// document describes, and that one not in the document (an unknown
	// path or method) is a 404 or 405 with an Error body.
	Malformed bool
}

// Check checks x against the document and counts it; the error names the
// method, path and status, and what does not match.
func (s *Spec) Check(x Exchange) error {
	problems := s.check(x)
	s.checked.Add(1)
	if len(problems) == 0 {
		return nil
	}
	s.failed.Add(1)
	if len(problems) > maxProblems {
		problems = append(problems[:maxProblems], fmt.Sprintf("... and %d more", len(problems)-maxProblems))
	}
	return fmt.Errorf("%s %s → %d does not match docs/openapi.yaml:\n\t%s",
		x.Request.Method, x.Request.URL.RequestURI(), x.Response.StatusCode, strings.Join(problems, "\n\t"))
}

// maxProblems bounds the problems one error lists (a page of 1,000 tasks
// may repeat one problem 1,000 times).
const maxProblems = 10

// Checked is how many exchanges were checked, and how many of them did not
// match.
func (s *Spec) Checked() (checked, failed int64) { return s.checked.Load(), s.failed.Load() }

func (s *Spec) check(x Exchange) []string {
	req := func() *http.Request {
		r := x.Request.Clone(context.WithoutCancel(x.Request.Context()))
		r.Body = io.NopCloser(bytes.NewReader(x.RequestBody))
		r.ContentLength = int64(len(x.RequestBody))
		return r
	}
	resp := *x.Response
	resp.Body = io.NopCloser(bytes.NewReader(x.ResponseBody))

	s.mu.Lock()
	defer s.mu.Unlock()
	var problems []string
	if !x.Malformed {
		if ok, errs := s.reqs.ValidateHttpRequestSync(req()); !ok {
			problems = append(problems, prefixed("request: ", messages(errs))...)
		}
	}
	if _, errs, path := paths.FindPath(req(), s.model, nil); len(errs) == 0 {
		k := answerKey(x.Request.Method, path, strconv.Itoa(resp.StatusCode))
		if _, ok := s.answers[k]; ok {
			s.answers[k] = true
		}
	}
	ok, errs := s.resps.ValidateHttpResponse(req(), &resp)
	switch {
	case ok:
	case x.Malformed && routeMissing(errs):
		// An endpoint or method the document does not have: the answer
		// must still be the pinned error.
		problems = append(problems, s.undocumentedRoute(&resp, x.ResponseBody)...)
	default:
		problems = append(problems, prefixed("response: ", messages(errs))...)
	}
	return problems
}

// undocumentedRoute checks the answer to a request of a path or method the
// document does not have: 404 not_found or 405 method_not_allowed, as an
// Error.
func (s *Spec) undocumentedRoute(resp *http.Response, body []byte) []string {
	var problems []string
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		problems = append(problems, fmt.Sprintf("response: status %d to a path or method the document does not have, want 404 or 405", resp.StatusCode))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		problems = append(problems, fmt.Sprintf("response: Content-Type %q, want application/json (an Error)", ct))
	}
	if ok, errs := s.schemas.ValidateSchemaBytes(s.errorSchema, body); !ok {
		problems = append(problems, prefixed("response body is not an Error: ", messages(errs))...)
	}
	return problems
}

// routeMissing reports whether errs only say that the request's path or
// method is not in the document.
func routeMissing(errs []*valerrors.ValidationError) bool {
	for _, e := range errs {
		if e.ValidationType != helpers.PathValidation && e.ValidationSubType != helpers.ValidationMissingOperation {
			return false
		}
	}
	return len(errs) > 0
}

// messages renders the validator's errors, one line each, with the fields
// of schema failures.
func messages(errs []*valerrors.ValidationError) []string {
	var out []string
	for _, e := range errs {
		m := e.Message
		if e.Reason != "" && e.Reason != e.Message {
			m += ": " + e.Reason
		}
		for _, f := range e.SchemaValidationErrors {
			where := f.FieldPath
			if where == "" {
				where = f.KeywordLocation
			}
			m += fmt.Sprintf(" [%s: %s]", where, f.Reason)
		}
		out = append(out, m)
	}
	return out
}

func prefixed(p string, lines []string) []string {
	for i, l := range lines {
		lines[i] = p + l
	}
	return lines
}
