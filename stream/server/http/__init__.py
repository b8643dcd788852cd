"""stream/server/http"""
