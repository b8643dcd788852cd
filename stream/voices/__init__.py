"""stream/voices"""
