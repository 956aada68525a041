"""Engine `openvino`: OpenVINO GenAI on CPU (the fast CPU engine; see `engine.py`)."""
