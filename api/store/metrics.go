package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"bakery.dev/bakery/api"
)

// MetricsSetting is the setting (Settings) that holds the metrics record
// of a deployment: the control loop's analytics collector writes it, the
// API reads it with LoadMetrics.
func MetricsSetting(deployment string) string {
	sum := sha256.Sum256([]byte(deployment))
	return "metrics-" + hex.EncodeToString(sum[:8])
}

// LoadMetrics returns the metrics record of a deployment (an empty one
// when nothing was collected yet).
func LoadMetrics(ctx context.Context, st Settings, deployment string) (*api.DeploymentMetrics, error) {
	b, err := st.GetSetting(ctx, MetricsSetting(deployment))
	if errors.Is(err, ErrNotFound) {
		return &api.DeploymentMetrics{Deployment: deployment, Nodes: []api.NodeMetrics{}}, nil
	}
	if err != nil {
		return nil, err
	}
	var m api.DeploymentMetrics
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", deployment, err)
	}
	if m.Deployment != deployment {
		// A hash collision of two names: start afresh rather than mix.
		return &api.DeploymentMetrics{Deployment: deployment, Nodes: []api.NodeMetrics{}}, nil
	}
	return &m, nil
}
