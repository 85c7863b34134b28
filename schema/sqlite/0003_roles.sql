-- Dovie embedded store, schema version 3: account roles (`user` or `admin`).
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin'));
