def test_login_page(client, world):
    r = client.post("/login/", {"username": "vera", "password": "correct-horse-battery-staple"})
    assert r.status_code == 302
    r = client.get("/")
    assert r.status_code == 200
    assert b"Viewer" in r.content
