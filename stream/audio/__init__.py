"""stream/audio"""
