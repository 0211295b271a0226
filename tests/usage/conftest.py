from tests.testcomfy.conftest import make_server  # noqa: F401  (the in-process test ComfyUI factory)
