package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/ferrydev/ferry/client"
)

// Submit a task to the quick start's echo function and wait for its
// outcome.
func Example() {
	c, err := client.New("http://127.0.0.1:8080", "demo-key")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	task, err := c.Submit(ctx, "echo", []byte(`{"hello":"world"}`), client.SubmitOptions{IdempotencyKey: "hello-1"})
	var apiErr *client.Error
	if errors.As(err, &apiErr) && apiErr.Temporary() {
		log.Fatalf("Ferry is busy, try again in %s: %v", apiErr.RetryAfter, err)
	}
	if err != nil {
		log.Fatal(err)
	}
	task, err = c.Wait(ctx, task.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(task.Status, string(task.Output))
}

// List every failed task of a function, page after page.
func ExampleClient_ListAll() {
	c, err := client.New("http://127.0.0.1:8080", "demo-key")
	if err != nil {
		log.Fatal(err)
	}
	for task, err := range c.ListAll(context.Background(), client.ListOptions{Function: "echo", Status: client.StatusFailed}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(task.ID, task.Error)
	}
}
