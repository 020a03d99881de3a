package channels

import (
	"context"
	"time"
)

// Cluster is what a node knows of the nodes that share its backend. The
// embedded backend is one node (SingleNode); the Redis backend registers
// nodes with heartbeats and moves each drain between them by lease.
type Cluster interface {
	// Owns reports whether this node delivers drainID now.
	Owns(drainID int64) bool
	// Changed receives a value when ownership may have changed (nil: it
	// never changes).
	Changed() <-chan struct{}
	// Owner returns the id of the node delivering drainID ("" when no node
	// holds it at the moment).
	Owner(ctx context.Context, drainID int64) (string, error)
	// Nodes lists the live nodes, this one included.
	Nodes(ctx context.Context) ([]Node, error)
	// Degraded says why this node serves in a degraded mode, or "".
	Degraded() string
}

// SingleNode is the Cluster of a node that is alone: it owns every drain,
// lists itself (seen now) and is never degraded.
type SingleNode struct {
	Node Node
}

var _ Cluster = (*SingleNode)(nil)

// Owns returns true: a single node delivers every drain.
func (s *SingleNode) Owns(int64) bool { return true }

// Changed returns nil: ownership never changes.
func (s *SingleNode) Changed() <-chan struct{} { return nil }

// Owner returns this node's id.
func (s *SingleNode) Owner(context.Context, int64) (string, error) { return s.Node.ID, nil }

// Nodes lists this node, seen now: it is the one answering.
func (s *SingleNode) Nodes(context.Context) ([]Node, error) {
	n := s.Node
	n.SeenAt = time.Now().UTC()
	return []Node{n}, nil
}

// Degraded returns "": a single node is never degraded.
func (s *SingleNode) Degraded() string { return "" }
