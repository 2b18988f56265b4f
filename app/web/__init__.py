"""The rep's pages: server-rendered, usable without JavaScript, a second face beside the API.

Routers parse the form, call the same services the API calls and render a template; they
never touch SQL. `pages.install` adds them, the static files, the security headers and the error
pages to the app.
"""
