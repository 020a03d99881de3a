package redis

import (
	"context"
	"errors"
	"fmt"

	"github.com/plexus-router/plexus/channels"
)

// Cluster is the channels.Cluster of a node that shares a Redis backend
// with others: its registration (Nodes) lists the live nodes, its drain
// leases (Leases) say which drains it delivers, and its channel log's
// health says whether it is degraded (writing to its local buffer while a
// shard is slow or away).
type Cluster struct {
	nodes  *Nodes
	leases *Leases
	log    *Log
}

var _ channels.Cluster = (*Cluster)(nil)

// NewCluster combines a node's registration, its drain leases and its
// channel log (nil: never degraded). The Cluster takes over nodes and
// leases: Close closes them. The log stays the caller's to close.
func NewCluster(nodes *Nodes, leases *Leases, log *Log) *Cluster {
	return &Cluster{nodes: nodes, leases: leases, log: log}
}

// ID returns this node's id.
func (c *Cluster) ID() string { return c.nodes.ID() }

// Owns reports whether this node holds drainID's lease now.
func (c *Cluster) Owns(drainID int64) bool { return c.leases.Owns(drainID) }

// Changed returns a new subscription that receives a value when this
// node's leases may have changed; it is closed by Close.
func (c *Cluster) Changed() <-chan struct{} { return c.leases.Changed() }

// Owner returns the node holding drainID's lease ("" if none).
func (c *Cluster) Owner(ctx context.Context, drainID int64) (string, error) {
	return c.leases.Owner(ctx, drainID)
}

// Nodes lists the live nodes, read from Redis.
func (c *Cluster) Nodes(ctx context.Context) ([]channels.Node, error) { return c.nodes.List(ctx) }

// Degraded says why the node is degraded: a shard does not take writes
// and accepted messages wait in the node's buffer ("" when every shard
// is healthy).
func (c *Cluster) Degraded() string {
	if c.log == nil || c.log.Healthy() {
		return ""
	}
	return fmt.Sprintf("redis unreachable: %d bytes of accepted messages buffered locally", c.log.BufferedBytes())
}

// Close releases this node's drain leases, so the other nodes take its
// drains over at once, then removes its registration. Stop delivering
// (the drain manager) first.
func (c *Cluster) Close() error {
	return errors.Join(c.leases.Close(), c.nodes.Close())
}
