-- A delivery that is one step of an escalation: `{ "step": n, "unless": [statuses] }`.
ALTER TABLE deliveries ADD COLUMN escalation TEXT;
