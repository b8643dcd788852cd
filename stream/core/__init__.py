"""stream/core"""
