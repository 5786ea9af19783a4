import time
import pytest
pytestmark = pytest.mark.browser

def test_timing(world, page, sign_in, traffic):
    t=time.time(); page.goto("/login/"); print("login get", time.time()-t)
    t=time.time(); page.goto("/login/"); print("login get2", time.time()-t)
    page.fill("#id_username", "vera"); page.fill("#id_password", "correct-horse-battery-staple")
    t=time.time()
    with page.expect_navigation():
        page.click("button[type=submit]")
    print("post", time.time()-t)
    t=time.time(); page.goto("/logout/"); print("x", time.time()-t)
