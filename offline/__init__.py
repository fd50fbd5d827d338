"""metaloihi.offline"""
