"""stream/engines/piper"""
