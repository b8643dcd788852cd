"""stream/accounts"""
