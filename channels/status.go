package channels

import "time"

// DrainStatus is what a drain's delivery looks like right now (an extension
// shown in the v3 drain GET and exported as metrics).
type DrainStatus struct {
	Delivered   uint64    `json:"delivered"`
	Dropped     uint64    `json:"dropped"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	LastSuccess time.Time `json:"last_success_at,omitzero"`
	LagMessages uint64    `json:"lag_messages"`
	LagSeconds  float64   `json:"lag_seconds"`
	Node        string    `json:"node,omitempty"` // the node delivering it (cluster)
}

// Node is a live router node of a cluster (GET /v3/nodes, an extension).
type Node struct {
	ID        string    `json:"id"`
	Addr      string    `json:"addr,omitempty"`
	StartedAt time.Time `json:"started_at"`
	SeenAt    time.Time `json:"seen_at"`
}
