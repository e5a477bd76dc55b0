package async

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Attributes of the submission spans (ferry.submit, ferry.submit_batch);
// the dispatcher's spans use the same names.
const (
	attrTenant     = attribute.Key("ferry.tenant")
	attrFunction   = attribute.Key("ferry.function")
	attrTaskID     = attribute.Key("ferry.task.id")
	attrDuplicate  = attribute.Key("ferry.duplicate")
	attrBatchCount = attribute.Key("ferry.batch.size")
	attrErrorType  = attribute.Key("error.type")
)

// spanLane names the tenant and function on a recording submit span,
// with more attributes if given.
func spanLane(span trace.Span, tenant, fn string, more ...attribute.KeyValue) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(append(more, attrTenant.String(tenant), attrFunction.String(fn))...)
}

// spanSubmitted describes the stored task on a recording submit span: the
// task's own id, or for an idempotent replay the first task's (whose
// trace is the one that runs).
func spanSubmitted(span trace.Span, t *Task, created bool) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attrTaskID.String(t.ID))
	if !created {
		span.SetAttributes(attrDuplicate.Bool(true))
	}
}

// spanRefused marks a recording submit span refused with code.
func spanRefused(span trace.Span, code string) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attrErrorType.String(code))
	span.SetStatus(codes.Error, code)
}
