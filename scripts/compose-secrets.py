"""Print a new secret.env for docker-compose.yml: a random RADIOSILENCE_SECRET_KEY, a random
PostgreSQL password and the database URL that uses it. Run it once (umask 077 first) and keep
the file: the key decrypts the stored mailbox passwords."""

import secrets

password = secrets.token_urlsafe(24)
print(f"RADIOSILENCE_SECRET_KEY={secrets.token_urlsafe(48)}")
print(f"POSTGRES_PASSWORD={password}")
print(f"RADIOSILENCE_DATABASE_URL=postgresql+asyncpg://radiosilence:{password}@db:5432/radiosilence")
