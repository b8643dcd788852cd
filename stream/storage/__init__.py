"""stream/storage"""
