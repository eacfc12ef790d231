CREATE TABLE baskets (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id text NOT NULL,
    stock integer NOT NULL DEFAULT 0 CHECK (stock >= 0)
);

CREATE INDEX baskets_user_id_idx ON baskets (user_id);
