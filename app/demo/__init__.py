"""`radiosilence demo`: a sample mailbox written for this project, served from a private
Dovecot (or imported from files), with a demo user."""
