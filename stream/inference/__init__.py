"""stream/inference"""
