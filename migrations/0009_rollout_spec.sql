-- Each rollout's spec (api.Rollout.Spec: the deployment's spec as the
-- rollout rolled it out), which `rollout undo` restores. It sits beside
-- the record rather than in it so that ListRollouts, which reads many
-- records (history, retention), reads no specs; GetRollout reads both.
-- NULL: a rollout recorded before this migration (an undo to it restores
-- only its commit).
ALTER TABLE rollouts ADD COLUMN spec jsonb;
UPDATE rollouts SET spec = record -> 'spec', record = record - 'spec'
    WHERE record ? 'spec';
