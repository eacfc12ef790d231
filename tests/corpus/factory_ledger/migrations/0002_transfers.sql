CREATE TABLE transfers (
    id bigserial PRIMARY KEY,
    sender_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    amount numeric(12, 2) NOT NULL CHECK (amount > 0),
    memo varchar(140),
    booked_on date NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
