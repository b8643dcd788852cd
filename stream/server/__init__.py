"""stream/server"""
