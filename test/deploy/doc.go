// Package deploy tests what the repository ships to run Plexus: the systemd
// unit and its sysusers entry (deploy/), the version make build embeds, and
// the container image built from the Dockerfile (docs/deploy.md). The
// programs they need (systemd-analyze, buildah, podman) are installed by
// scripts/test-deps.sh; a test skips loudly without them and fails under
// CI=true (test/plexustest.Missing).
package deploy
